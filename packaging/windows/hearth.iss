; Inno Setup script for Hearth on Windows (not tested by Hearth's CI: it builds on Linux only).
; Build the bundle first on Windows (`pyinstaller packaging\hearth.spec --noconfirm --distpath dist`), then:
;     iscc packaging\windows\hearth.iss
; Inno Setup rather than NSIS: NSIS installers stop at 2 GB, and Hearth's bundle (torch, Qt) is larger with a CUDA
; build. DiskSpanning splits the setup into slices so that no single file passes that limit either.
#define AppName "Hearth"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define BundleDir "..\..\dist\Hearth"

[Setup]
AppId={{4C1F0E8A-6B0E-4E0B-9C55-2E3B0E9D7A11}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Hearth
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
; Per-user by default (no administrator rights); the user may choose all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=Hearth-{#AppVersion}-windows-x86_64-setup
SetupIconFile=..\..\assets\icons\hearth.ico
UninstallDisplayIcon={app}\Hearth.exe
Compression=lzma2/normal
SolidCompression=no
DiskSpanning=yes
DiskSliceSize=max
WizardStyle=modern

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\Hearth.exe"
Name: "{group}\{#AppName} self-test"; Filename: "{app}\hearth-cli.exe"; Parameters: "selftest"; Flags: runminimized
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\Hearth.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Run]
Filename: "{app}\Hearth.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; __pycache__ folders that Python wrote beside the bundled transformers/diffusers sources.
Type: filesandordirs; Name: "{app}\_internal\transformers"
Type: filesandordirs; Name: "{app}\_internal\diffusers"
